with orders as (
    select * from {{ ref('stg_orders') }}
),

payments as (
    select * from {{ ref('int_order_payments') }}
),

customer_orders as (
    select
        orders.customer_id,
        min(orders.order_date) as first_order_date,
        max(orders.order_date) as most_recent_order_date,
        count(*) as number_of_orders,
        sum(zeroifnull(payments.amount)::number(38, 2)) as lifetime_value
    from orders
    left join payments on orders.order_id = payments.order_id
    group by all
)

select
    c.customer_id,
    'C-' || to_char(c.customer_id) as customer_code,
    c.customer_name,
    co.first_order_date,
    co.most_recent_order_date,
    zeroifnull(co.number_of_orders) as number_of_orders,
    zeroifnull(co.lifetime_value) as lifetime_value,
    div0(co.lifetime_value, co.number_of_orders)::number(38, 2) as average_order_value,
    iff(co.number_of_orders > 1, 'repeat', 'one_time') as customer_segment
from {{ ref('stg_customers') }} as c
left join customer_orders as co on c.customer_id = co.customer_id
