"""An app written for the original mozilla/crontabber runs here without edits."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from .clitools import run_crontabber, write_config

ORIGINAL_STYLE = """
from configman import Namespace

from crontabber.base import BaseCronApp
from crontabber.mixins import (
    as_backfill_cron_app,
    with_postgres_transactions,
    with_single_postgres_transaction,
)


@with_postgres_transactions()
@with_single_postgres_transaction()
@as_backfill_cron_app
class UpdateADUsApp(BaseCronApp):
    app_name = "update-adus"
    app_description = "fills one row per day"
    required_config = Namespace()
    required_config.add_option("table", default="adus", doc="where the rows go")

    def run(self, connection, date):
        cursor = connection.cursor()
        cursor.execute("CREATE TABLE IF NOT EXISTS " + self.config.table + " (day date UNIQUE)")
        cursor.execute("INSERT INTO " + self.config.table + " (day) VALUES (%s)", (date.date(),))


class ReportApp(BaseCronApp):
    app_name = "report"
    depends_on = ("update-adus",)

    def run(self):
        self.database_transaction_executor(self._count)

    def _count(self, connection):
        cursor = connection.cursor()
        cursor.execute("SELECT count(*) FROM daily_adus")
        assert cursor.fetchone()[0] >= 1
ReportApp = with_postgres_transactions()(ReportApp)
"""


@pytest.mark.postgres
def test_original_style_apps_run_unchanged(tmp_path: Path, pg_url: str) -> None:
    (tmp_path / "socorro_jobs.py").write_text(ORIGINAL_STYLE)
    url = sa.make_url(pg_url)
    extra = f"""
    [[class-UpdateADUsApp]]
        table=daily_adus
[resource]
    [[postgresql]]
        host={url.host}
        port={url.port}
        dbname={url.database}
        user={url.username}
"""
    config = write_config(
        tmp_path, "socorro_jobs.UpdateADUsApp|1d|00:00\nsocorro_jobs.ReportApp|1d", extra=extra
    )
    result = run_crontabber(f"--admin.conf={config}", cwd=tmp_path)
    assert result.status == 0, result.stderr
    assert "ran update-adus" in result.stderr and "ran report" in result.stderr
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM daily_adus").scalar() == 1
        states = dict(conn.exec_driver_sql("SELECT app_name, error_count FROM crontabber").all())
    engine.dispose()
    assert states == {"update-adus": 0, "report": 0}
