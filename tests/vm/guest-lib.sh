# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by guest scripts: report helpers. Each result is one line.
pass() { echo "VMTEST PASS $*"; }
fail() { echo "VMTEST FAIL $*"; }
skip() { echo "VMTEST SKIP $*"; }
have() { command -v "$1" >/dev/null 2>&1; }
