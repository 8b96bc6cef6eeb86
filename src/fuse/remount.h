/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mount -o remount (remount.c): the flags of an existing foliofs mount,
 * changed by mount(2), as mount.fuse3 asks of its helper.
 */
#ifndef FOLIOFS_FUSE_REMOUNT_H
#define FOLIOFS_FUSE_REMOUNT_H

/*
 * argv as main's. -1 when the options hold no "remount" (a mount: main
 * goes on); else the exit status: 0, 1 (refused or failed), 2 (usage).
 */
int ff_remount_main(int argc, char **argv);

#endif
