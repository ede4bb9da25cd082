"""A job with its own options, set in ``[crontabber] [[class-GreetingApp]]``."""

from __future__ import annotations

import logging

from configman import Namespace

from crontabber import App

log = logging.getLogger(__name__)


class GreetingApp(App):
    app_name = "greeting"
    required_config = Namespace()
    required_config.add_option("greeting", default="hello", doc="what to say")
    required_config.add_option("times", default=1, doc="how often to say it")

    def run(self) -> None:
        for _ in range(int(self.config.times)):
            log.info("%s", self.config.greeting)
