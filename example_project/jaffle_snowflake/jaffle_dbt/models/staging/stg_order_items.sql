-- one row per item of an order: the order service's JSON array, flattened
select
    to_varchar(o.id) || '-' || to_varchar(item.index) as order_item_id,
    o.id as order_id,
    item.index as item_position,
    item.value::string as product_name
from {{ source('jaffle', 'orders') }} as o,
    lateral flatten(input => parse_json(o.payload):items) as item
