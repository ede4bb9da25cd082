"""Example crontabber jobs; ``myconfig.ini`` at the top of the repository runs them."""
