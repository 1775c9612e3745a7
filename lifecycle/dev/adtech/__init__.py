"""A multi-tenant ad-analytics application (the schema of the Citus multi-tenant tutorial) with
ad images in object storage, a deterministic data generator and its data map
(``datamap.toml``). Tenant = company; its data key is the company id as a string."""

from pathlib import Path

#: The data map of the sample application, used by `tenantctl dev` when DATA_MAP_PATH is unset.
DATAMAP_PATH = Path(__file__).with_name("datamap.toml")
#: Its Redis cache store, added to the map when APP_REDIS_URL is set (``env.sample_datamap``).
CACHE_MAP_PATH = Path(__file__).with_name("cache.toml")
