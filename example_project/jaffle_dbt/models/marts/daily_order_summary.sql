{{ config(tags=['finance']) }}

select
    order_date,
    count(*) as order_count,
    sum(amount) as revenue
from {{ ref('orders') }}
group by order_date
order by order_date
