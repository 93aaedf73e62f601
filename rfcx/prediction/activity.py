"""An archive's activity overview: how many detections of each species fall in each hour of the day and on each
date, per site, from the absolute times that recorders write into file names (rfcx.data.archive.parse_file_start).

This is the first thing people look at after a deployment (when does each species call, and where), and it needs
no audio: it is counted from the combined detections table. A detection counts at its start time.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rfcx.io import write_csv

BY_HOUR_COLUMNS: tuple[str, ...] = ("site", "species_id", "hour", "detections")
BY_DATE_COLUMNS: tuple[str, ...] = ("site", "species_id", "date", "detections")


def activity_tables(detections: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Detections per (site, species, hour of day 0-23) and per (site, species, date), over the detections whose
    time is known (start_time set); both empty when no file name carried a time."""
    timed = detections.dropna(subset=["start_time"])
    times = pd.to_datetime(timed["start_time"])
    by_hour = (timed.assign(hour=times.dt.hour).groupby(["site", "species_id", "hour"]).size()
               .rename("detections").reset_index())
    by_date = (timed.assign(date=times.dt.strftime("%Y-%m-%d")).groupby(["site", "species_id", "date"]).size()
               .rename("detections").reset_index())
    return by_hour[list(BY_HOUR_COLUMNS)], by_date[list(BY_DATE_COLUMNS)]


def write_activity(detections: pd.DataFrame, out_dir: str | Path) -> None:
    """activity_by_hour.csv, activity_by_date.csv and activity.png (rfcx.pipeline.plots.plot_activity) in `out_dir`."""
    from rfcx.pipeline.plots import plot_activity

    out_dir = Path(out_dir)
    by_hour, by_date = activity_tables(detections)
    write_csv(by_hour, out_dir / "activity_by_hour.csv")
    write_csv(by_date, out_dir / "activity_by_date.csv")
    plot_activity(by_hour, by_date, out_dir / "activity.png")
