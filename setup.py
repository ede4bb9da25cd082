from pathlib import Path

from setuptools import find_packages, setup

POSTGRES = ["psycopg2-binary>=2.9"]
WEB = ["Jinja2>=3.1", "waitress>=3.0.1", "prometheus_client>=0.17"]
SENTRY = ["sentry-sdk>=2.0"]

setup(
    # The import package and the command are crontabber; the distribution's name is its
    # own, so that `pip install -U` never swaps in mozilla's Python 2 crontabber (0.18.1).
    name="crontabber-ng",
    version="1.0.0",
    description="A distributed cron job runner with database locking",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MPL-2.0",
    license_files=["LICENSE"],
    # The project it continues; its own home and documentation addresses are set where
    # it is published (the docs build from docs/ with MkDocs).
    project_urls={"Original project": "https://github.com/mozilla/crontabber"},
    python_requires=">=3.10",
    packages=[
        *find_packages(include=["crontabber", "crontabber.*"]),
        "crontabber.migrations",
        "crontabber.migrations.versions",
    ],
    # The Alembic revisions live in migrations/ and install as crontabber.migrations.
    package_dir={"crontabber.migrations": "migrations"},
    package_data={
        "crontabber.store": ["sql/postgresql.sql", "sql/sqlite.sql"],
        "crontabber.web": ["templates/*.html", "static/*.css", "static/*.js"],
        "crontabber.migrations": ["script.py.mako", "alembic.ini", "README.md"],
    },
    install_requires=[
        "alembic>=1.13",
        "configman>=1.3.0",
        "configobj>=5.0",
        "cronsim>=2.6",
        "python-dateutil>=2.8",
        "SQLAlchemy>=2.0,<3",
        "humanize>=4.0",
        "tzdata",
    ],
    # What only some installs use: each missing one is said in one line naming its extra.
    extras_require={
        # The state on PostgreSQL (and the original's PostgreSQL resources). For a
        # driver built from source, install psycopg2 instead of this extra.
        "postgres": POSTGRES,
        # The status page (--serve, a daemon's web.port): templates, its WSGI server,
        # Prometheus's format.
        "web": WEB,
        "sentry": SENTRY,
        "all": POSTGRES + WEB + SENTRY,
        "test": [
            *POSTGRES,
            *WEB,
            *SENTRY,
            "pytest>=8",
            "ruff==0.17.6",
            "selenium>=4.11",
            "aiosmtpd>=1.4",
            "PyYAML>=6",
        ],
        "docs": ["mkdocs>=1.6", "mkdocs-material>=9"],
    },
    entry_points={"console_scripts": ["crontabber = crontabber.cli:entry_point"]},
    classifiers=[
        "Development Status :: 4 - Beta",
        "Environment :: Console",
        "Environment :: No Input/Output (Daemon)",
        "Intended Audience :: System Administrators",
        "Intended Audience :: Developers",
        "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)",
        "Topic :: System :: Distributed Computing",
        "Topic :: System :: Systems Administration",
        "Topic :: Database",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Operating System :: POSIX",
    ],
)
