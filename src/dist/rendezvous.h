/* How the ranks of a job started without MPI (srun without PMI, processes
 * started by hand, a container orchestrator) find each other: rank 0 hands
 * a few bytes (NCCL's unique id) to every other rank, through a file on a
 * filesystem all ranks see or a TCP address rank 0 listens on.
 *
 *   file:PATH        rank 0 writes PATH (atomically, tagged with the job);
 *                    the others wait for it. One PATH per job.
 *   tcp:HOST:PORT    rank 0 listens on PORT; the others connect to HOST.
 *
 * Under Slurm (srun without PMI) the rank, the world and the local rank
 * come from SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID, and the default
 * rendezvous is tcp on the first host of SLURM_STEP_NODELIST (or
 * SLURM_JOB_NODELIST), port 29517 + SLURM_STEP_ID % 1000. */
#ifndef GENRE_DIST_RENDEZVOUS_H
#define GENRE_DIST_RENDEZVOUS_H

#include <stddef.h>

/* Where this process stands in a job that no MPI launcher started. */
typedef struct {
    int rank, world, local;
    char spec[512];  /* "file:PATH" or "tcp:HOST:PORT" */
    char tag[64];    /* the job's name in a file rendezvous (SLURM_JOB_ID.SLURM_STEP_ID, or "job") */
} RendezvousJob;

/* Fills job from spec (NULL: the Slurm default) and the Slurm variables.
 * 0, -1 with err_set for a bad spec or variables, or 1 when this process
 * is in no such job (no spec, and no srun step of several tasks). */
int rendezvous_job(RendezvousJob *job, const char *spec);

/* Rank 0's n bytes into every rank's bytes, waiting at most timeout_s. 0,
 * or -1 with err_set naming the rendezvous and what did not come. */
int rendezvous_share(const RendezvousJob *job, void *bytes, size_t n, double timeout_s);

/* The first host of a Slurm nodelist ("node[07-09,12],gpu3" -> "node07"),
 * into out. 0, or -1 with err_set. */
int rendezvous_first_host(const char *nodelist, char *out, size_t size);

#endif
