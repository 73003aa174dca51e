#!/usr/bin/env python3
"""Summarises an h2load --log-file (start µs, status, duration µs per
request) as one RESULT line like sar.lua's: requests, rps over the run,
p50/p99, and non-2xx.

usage: h2load_stats.py LOGFILE
"""
import sys


def main():
    starts, durations, bad = [], [], 0
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            start, status, duration = int(parts[0]), int(parts[1]), int(parts[2])
            starts.append(start)
            durations.append(duration)
            if not 200 <= status < 300:
                bad += 1
    if not durations:
        print("RESULT requests=0")
        return
    durations.sort()
    seconds = (max(starts) - min(starts)) / 1e6 or 1.0

    def pct(p):
        return durations[min(len(durations) - 1, int(len(durations) * p / 100))] / 1000

    print(
        f"RESULT requests={len(durations)} seconds={seconds:.1f} rps={len(durations) / seconds:.0f} "
        f"p50_ms={pct(50):.3f} p99_ms={pct(99):.3f} max_ms={durations[-1] / 1000:.3f} non2xx={bad}"
    )


if __name__ == "__main__":
    main()
