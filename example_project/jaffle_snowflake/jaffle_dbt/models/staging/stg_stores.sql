select
    id as store_id,
    -- the stores loader lands names in lower case
    initcap(name) as store_name,
    opened_at
from {{ source('jaffle', 'stores') }}
