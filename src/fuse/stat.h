/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * foliofs stat: the live counters of a mount, readable (stat.c). The daemon's
 * main() hands its argv over when argv[1] is "stat"; nothing here talks to
 * FUSE, it reads the mount's xattrs like any other program.
 */
#ifndef FOLIOFS_FUSE_STAT_H
#define FOLIOFS_FUSE_STAT_H

/* argv[0] is "stat". Returns the exit status: 0, 1 (cannot read), 2 (usage). */
int ff_stat_main(int argc, char **argv);

#endif
