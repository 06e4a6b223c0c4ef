"""Episodes, whatever runs them: their plan from the task's scenarios, the keys that end them, their
validation, and the trials an evaluation matches across checkpoints."""
