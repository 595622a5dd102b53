{{ config(tags=['finance']) }}

select
    order_date,
    date_trunc('week', order_date)::date as order_week,
    count(*) as order_count,
    count_if(is_returned) as returned_count,
    sum(amount::number(38, 2)) as revenue
from {{ ref('orders') }}
group by all
order by order_date
