select
    id as order_id,
    user_id as customer_id,
    store_id,
    order_date::date as order_date,
    nvl(status, 'placed') as status,
    -- in-store orders carry no channel in the order service's JSON
    nvl(parse_json(payload):channel::string, 'in_store') as channel
from {{ source('jaffle', 'orders') }}
