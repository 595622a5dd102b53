{{ config(tags=['finance']) }}

select
    order_id,
    count(*) as payment_count,
    sum(amount::number(38, 2)) as amount
from {{ ref('stg_payments') }}
group by all
