/* `genre train --procs N` / `--gpus N`: the local ranks of a job, started by
 * mpirun (OpenMPI) rather than by us, so that a job on one machine is the
 * same MPI job a cluster runs. */
#ifndef GENRE_DIST_LAUNCH_H
#define GENRE_DIST_LAUNCH_H

/* Replaces this process by `mpirun -np procs ... <this binary> args...`
 * (args: the command and its arguments, NULL-terminated), each rank with an
 * equal share of the cores as OMP_NUM_THREADS. $MPIRUN names another
 * mpirun. Returns only on failure: -1 with err_set. */
int dist_launch(int procs, char *const *args);

#endif
