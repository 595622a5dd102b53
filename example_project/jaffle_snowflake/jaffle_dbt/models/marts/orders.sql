with items as (
    select
        order_id,
        count(*) as item_count
    from {{ ref('stg_order_items') }}
    group by all
)

select
    o.order_id,
    '#' || to_varchar(o.order_id) as order_number,
    o.customer_id,
    o.store_id,
    s.store_name,
    o.order_date,
    o.status,
    o.channel,
    zeroifnull(i.item_count) as item_count,
    zeroifnull(p.payment_count) as payment_count,
    nvl(p.amount, 0)::number(38, 2) as amount,
    iff(o.status in ('returned', 'return_pending'), true, false) as is_returned
from {{ ref('stg_orders') }} as o
left join {{ ref('int_order_payments') }} as p on o.order_id = p.order_id
left join {{ ref('stg_stores') }} as s on o.store_id = s.store_id
left join items as i on o.order_id = i.order_id
where o.order_date >= '{{ var("min_order_date", "1900-01-01") }}'::date
