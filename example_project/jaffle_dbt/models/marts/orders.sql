select
    o.order_id,
    o.customer_id,
    o.store_id,
    s.store_name,
    o.order_date,
    o.status,
    coalesce(p.payment_count, 0) as payment_count,
    coalesce(p.amount, 0) as amount
from {{ ref('stg_orders') }} as o
left join {{ ref('int_order_payments') }} as p on o.order_id = p.order_id
left join {{ ref('stg_stores') }} as s on o.store_id = s.store_id
where o.order_date >= cast('{{ var("min_order_date", "1900-01-01") }}' as date)
