{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='order_id',
    )
}}

select
    order_id,
    customer_id,
    order_date,
    status as event_type,
    dateadd(day, 30, order_date)::date as return_window_ends
from {{ ref('stg_orders') }}

{% if is_incremental() %}
-- a day of lookback: orders of the last loaded day may have changed status since
where order_date >= (select dateadd(day, -1, max(order_date))::date from {{ this }})
{% endif %}

-- the order service can export an order twice: keep its latest state
qualify row_number() over (partition by order_id order by order_date desc) = 1
