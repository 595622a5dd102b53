{{
    config(
        materialized='incremental',
        unique_key='order_id',
    )
}}

select
    order_id,
    customer_id,
    order_date,
    status as event_type
from {{ ref('stg_orders') }}

{% if is_incremental() %}
-- only reprocess the most recent day already loaded, plus anything newer
where order_date >= (select max(order_date) from {{ this }})
{% endif %}
