"""Where the heavy stages do their work: in the stage's process (executor `local`), or as
submitit jobs on a SLURM cluster (executor `slurm`) that the stage submits and waits for."""
