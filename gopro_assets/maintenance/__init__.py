"""Operations on the lake itself: weekly OPTIMIZE/VACUUM and parallel re-processing of
daily partitions. Registered in gopro_assets/definitions.py."""

from gopro_assets.maintenance.lake import lake_maintenance_job, lake_maintenance_schedule
from gopro_assets.maintenance.reprocess import daily_partitions_job

JOBS = [lake_maintenance_job, daily_partitions_job]
SCHEDULES = [lake_maintenance_schedule]
