"""The Hydra-composed stages: one module each, one entry function each; stages never import each other."""
