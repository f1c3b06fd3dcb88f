# Sourced by scripts/services and scripts/prod; the caller defines die().

# detach PIDFILE LOGFILE DIR COMMAND... -> run COMMAND in DIR in a session of its own, appending its
# output to LOGFILE, and record its pid in PIDFILE. The process writes its own pid before it execs:
# `$!` is not its pid when setsid has to fork (it must whenever the caller leads its process group,
# as under a shell with job control).
detach() {
    local pidfile=$1 logfile=$2 dir=$3 i
    shift 3
    rm -f "$pidfile"
    (cd "$dir" && setsid --fork sh -c 'echo $$ >"$0" && exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1)
    for ((i = 0; i < 50; i++)); do
        [[ -s $pidfile ]] && return 0
        sleep 0.1
    done
    die "$(basename "$pidfile" .pid): the process did not start (see $logfile)"
}
