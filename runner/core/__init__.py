"""What every stage and command shares: the run lifecycle (context, jobs, resumption), its checks, sweeps,
the Hydra command line, and the outputs tree with the layout of a run directory."""
