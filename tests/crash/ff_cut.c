// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ff-cut IMG VLOG SEED KEEP_PCT: apply a simulated power cut to IMG from the
 * volatile-write log a FOLIOFS_FAULT=vlog=VLOG daemon left behind (see
 * include/foliofs/fault.h). Run it only after that daemon is dead.
 * Prints "entries N durable N kept N dropped N torn N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "foliofs/fault.h"

int main(int argc, char **argv)
{
	struct ff_cut_stats st;
	int ret;

	if (argc != 5) {
		fprintf(stderr, "usage: ff-cut IMG VLOG SEED KEEP_PCT\n");
		return 2;
	}
	ret = ff_fault_apply_cut(argv[1], argv[2], strtoull(argv[3], NULL, 0),
				 (unsigned)atoi(argv[4]), &st);
	if (ret) {
		fprintf(stderr, "ff-cut: %s\n", strerror(-ret));
		return 1;
	}
	printf("entries %llu durable %llu kept %llu dropped %llu torn %llu\n",
	       (unsigned long long)st.entries, (unsigned long long)st.durable,
	       (unsigned long long)st.kept, (unsigned long long)st.dropped,
	       (unsigned long long)st.torn_tail);
	return 0;
}
