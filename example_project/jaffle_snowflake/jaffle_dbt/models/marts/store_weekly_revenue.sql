{{ config(tags=['finance']) }}

select
    store_id,
    store_name,
    date_trunc('week', order_date)::date as order_week,
    count(*) as order_count,
    sum(iff(is_returned, 0, amount)::number(38, 2)) as net_revenue
from {{ ref('orders') }}
group by all
order by store_id, order_week
