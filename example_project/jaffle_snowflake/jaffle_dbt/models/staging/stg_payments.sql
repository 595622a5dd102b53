{{ config(tags=['finance']) }}

select
    id as payment_id,
    order_id,
    payment_method,
    -- amounts are stored in cents
    (zeroifnull(amount) / 100)::number(10, 2) as amount
from {{ ref('raw_payments') }}
