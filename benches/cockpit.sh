#!/usr/bin/env bash
# The cockpit's own cost while it watches a running job: CPU use at the default refresh
# (250 ms), measured from /proc over 20 s, and time to first frame (process start to the first
# frame drawn, and to the first frame with job data), median of 5 starts.
#
#   cargo build --release && bash benches/cockpit.sh
#   bash benches/cockpit.sh --quick      # one start, 2 s of CPU: checks the script runs (CI)
# STROM_BIN picks the binary (default target/release/strom).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${STROM_BIN:-target/release/strom}")
STARTS=5 WATCH=20
if [ "${1:-}" = "--quick" ]; then STARTS=1 WATCH=2; fi
WORK=$(mktemp -d)
SOCK=strom-cockpit-bench-$$
trap 'tmux -L $SOCK kill-server 2>/dev/null; kill $COORD 2>/dev/null; wait 2>/dev/null; rm -rf $WORK' EXIT

echo 0123456789abcdef0123456789abcdef > $WORK/token
cat > $WORK/job.toml <<JOB
name = "cockpit-bench"
[train]
epochs = 100000
[sharing]
mode = "threshold"
[cluster]
launcher = "local"
workers = 2
JOB
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$BIN --log-format json coordinator --listen 127.0.0.1:$PORT --token-file $WORK/token --job $WORK/job.toml 2>$WORK/coord.log &
COORD=$!
sleep 3

tmux -L $SOCK new-session -d -s main -x 120 -y 40 "bash --norc --noprofile"
start_cockpit() {
  tmux -L $SOCK send-keys -t main "STROM_UI_TIMING=$1 $BIN attach http://127.0.0.1:$PORT --token-file $WORK/token" Enter
  for _ in $(seq 100); do grep -q first_data_frame_ms "$1" 2>/dev/null && return; sleep 0.1; done
}
stop_cockpit() { tmux -L $SOCK send-keys -t main q; sleep 0.5; }

# Time to first frame: $STARTS starts.
for i in $(seq $STARTS); do start_cockpit $WORK/timing-$i; stop_cockpit; done
stats() { grep -h "^$1 " $WORK/timing-* | awk '{print $2}' | sort -n | awk -v what="$2" '{a[NR]=$1} END {printf "%s: median %.0f ms (min %.0f, max %.0f, %d starts)\n", what, a[int((NR+1)/2)], a[1], a[NR], NR}'; }
stats first_frame_ms "time to first frame"
stats first_data_frame_ms "time to first frame with job data"

# CPU while watching (the Dashboard, the busiest screen).
start_cockpit $WORK/timing-cpu
tmux -L $SOCK send-keys -t main Tab
sleep 3
PID=$(pgrep -f "STROM_UI_TIMING=$WORK/timing-cpu" -n || pgrep -f "$BIN attach" -n)
ticks() { awk '{print $14 + $15}' /proc/$PID/stat; }
T0=$(ticks); sleep $WATCH; T1=$(ticks)
HZ=$(getconf CLK_TCK)
awk -v d=$((T1 - T0)) -v hz=$HZ -v s=$WATCH 'BEGIN { printf "cockpit CPU while watching a running job: %.2f%% of one core (%d s, refresh 250 ms)\n", 100 * d / hz / s, s }'
grep -q RUNNING <(tmux -L $SOCK capture-pane -p -t main) && echo "(the job was running throughout)"
stop_cockpit
