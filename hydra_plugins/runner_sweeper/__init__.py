"""runner's Hydra sweeper. Hydra loads sweeper plugins only from the ``hydra_plugins`` namespace package."""
