"""runner: a declarative YAML experiment runner for robot learning with LeRobot."""

__version__ = "0.1.0"
