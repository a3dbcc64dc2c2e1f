#!/usr/bin/python3
"""bench/report.py on made-up results: medians, ratios paired by
repetition, the three placements (unpinned, pinned, spread) kept apart,
and which targets the summary calls met. BENCHMARKS.md's verdicts are this
arithmetic, so it is tested like the library."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import report  # noqa: E402


def line(rep, contender, msgs, pattern="pushpull", transport="tcp", size=16, **extra):
    r = {"rep": rep, "contender": contender, "version": "1", "pattern": pattern, "transport": transport,
         "size": size, "codec": "raw", "pinned": False, "msgs_per_sec": msgs, "mb_per_sec": msgs * size / 1e6}
    r.update(extra)
    return r


def targets_of(report_text):
    """The Targets section of a whole report."""
    return report_text[report_text.index("## Targets"):report_text.index("## Push/pull")]


class ReportTest(unittest.TestCase):
    def results(self, rows):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
            f.write("bench: a log line, skipped\n")
        self.addCleanup(os.unlink, f.name)
        groups, versions = report.load(f.name)
        return report.Results(groups), f.name

    def test_ratio_is_the_median_of_same_repetition_ratios(self):
        # Ratios 0.5, 1.0 and 2.0: the median of ratios is 1.0, where the
        # ratio of the medians (200 / 200) would hide the pairing.
        res, _ = self.results([line(0, "raw", 100), line(0, "liberzmq", 50),
                               line(1, "raw", 200), line(1, "liberzmq", 200),
                               line(2, "raw", 300), line(2, "liberzmq", 600)])
        self.assertEqual(res.paired_ratio("msgs_per_sec", "liberzmq", "raw", "pushpull", "tcp", 16), 1.0)
        self.assertEqual(res.median("msgs_per_sec", "liberzmq", "pushpull", "tcp", 16), 200)

    def test_a_missing_repetition_leaves_a_gap_not_a_shift(self):
        # The liberzmq run of repetition 1 failed: repetitions 0 and 2 pair
        # with their own raw runs (ratios 1.0 and 1.0), not with 1's.
        res, _ = self.results([line(0, "raw", 100), line(0, "liberzmq", 100),
                               line(1, "raw", 900),
                               line(2, "raw", 300), line(2, "liberzmq", 300)])
        self.assertEqual(res.paired_ratios("msgs_per_sec", "liberzmq", "raw", "pushpull", "tcp", 16), [1.0, 1.0])

    def test_placements_stay_apart(self):
        res, _ = self.results([line(0, "raw", 100), line(0, "liberzmq", 90),
                               line(0, "raw", 1000, spread=True), line(0, "liberzmq", 1100, spread=True),
                               line(0, "raw", 10, pattern="reqrep", pinned=True, p50_us=10.0),
                               line(0, "liberzmq", 10, pattern="reqrep", pinned=True, p50_us=11.0)])
        self.assertAlmostEqual(res.paired_ratio("msgs_per_sec", "liberzmq", "raw", "pushpull", "tcp", 16), 0.9)
        self.assertAlmostEqual(
            res.paired_ratio("msgs_per_sec", "liberzmq", "raw", "pushpull", "tcp", 16, "spread"), 1.1)
        self.assertAlmostEqual(res.paired_ratio("p50_us", "raw", "liberzmq", "reqrep", "tcp", 16, True), 10 / 11)
        self.assertIsNone(res.paired_ratio("p50_us", "raw", "liberzmq", "reqrep", "tcp", 16, False))

    def test_summary_counts_met_and_missed(self):
        targets = report.Targets()
        self.assertEqual(targets.check("a", 0.95, 0.95), "yes")
        self.assertEqual(targets.check("b", 0.94, 0.95), "**no**")
        self.assertEqual(targets.check("c", None, 0.95), "?")
        summary = "\n".join(report.summary(targets))
        self.assertIn("1 of 3 checks met, 1 missed, 1 not measured.", summary)
        self.assertIn("- b: 0.94 (goal >= 0.95)", summary)

    def report_of(self, rows):
        _, path = self.results(rows)
        return subprocess.run([sys.executable, os.path.join(HERE, "..", "bench", "report.py"), path,
                               "nproc=2; cpu=test; reps=3; seconds=0.1"],
                              check=True, capture_output=True, text=True).stdout

    def test_whole_report_judges_unpinned_and_shows_spread(self):
        unpinned, spread = [], []
        for rep in range(3):
            unpinned += [line(rep, "raw", 100), line(rep, "liberzmq", 90 + rep)]  # 0.90-0.92: missed
            spread += [line(rep, "raw", 100, spread=True), line(rep, "liberzmq", 99 + rep, spread=True)]
        out = self.report_of(unpinned + spread)
        self.assertIn("- pushpull tcp 16 B: liberzmq / raw libzmq: 0.91 (goal >= 0.95)", out)
        self.assertIn("| pushpull | tcp | 16 | 100 | 100 | 1.00 (0.99-1.01) |", out)
        # The spread table is shown and not judged: the targets are the same without it.
        self.assertEqual(targets_of(out), targets_of(self.report_of(unpinned)))
        self.assertNotIn("own CPU", self.report_of(unpinned))

    def test_json_rows_compare_with_raw_of_the_message_and_of_the_frame(self):
        # liberzmq-40 and liberzmq-frame are liberzmq runs told apart by
        # "as": JSON over raw 40 B is judged (0.4: missed), JSON over raw of
        # the 160-byte frame is shown (0.8) and not judged.
        rows = []
        for rep in range(3):
            rows += [line(rep, "liberzmq-json", 40, size=40, codec="json", frame_bytes=160),
                     line(rep, "liberzmq", 100, size=40, **{"as": "liberzmq-40"}),
                     line(rep, "pyzmq-json", 2, size=40, codec="json")]
        frame = [line(rep, "liberzmq", 50, size=160, **{"as": "liberzmq-frame"}) for rep in range(3)]
        out = self.report_of(rows + frame)
        self.assertIn("| pushpull | tcp | 40 | 2 | 20.00 | - | - | 100 | 0.40 | 160 B | 50 | 0.80 |", out)
        self.assertIn("- JSON pushpull tcp: JSON / liberzmq raw: 0.40 (goal >= 0.50)", out)
        self.assertEqual(targets_of(out), targets_of(self.report_of(rows)))
        self.assertIn("| pushpull | tcp | 40 | 2 | 20.00 | - | - | 100 | 0.40 | - | - | - |", self.report_of(rows))

    def test_memory_shows_the_anonymous_part_when_recorded(self):
        def mem(rep, contender, anon=None):
            r = {"rep": rep, "contender": contender, "version": "1", "pattern": "memory", "transport": "tcp",
                 "size": 256, "codec": "raw", "pinned": False, "rss_start_kb": 1000, "rss_idle_kb": 3000 + rep,
                 "rss_loaded_kb": 4000, "rss_peak_kb": 5000}
            if anon is not None:
                r.update(rss_anon_start_kb=100, rss_anon_idle_kb=100 + anon)
            return r
        out = self.report_of([mem(rep, "raw", 150 + rep) for rep in range(3)] + [mem(rep, "liberzmq") for rep in range(3)])
        self.assertIn("| raw | 1000 | 3001 | 4000 | 5000 | 2001 | 151 |", out)
        self.assertIn("| liberzmq | 1000 | 3001 | 4000 | 5000 | 2001 | - |", out)  # older results: not recorded

    def test_latency_shows_the_median_mean_and_judges_pinned_p50(self):
        def rt(rep, contender, p50, mean=None, pinned=True):
            r = {"rep": rep, "contender": contender, "version": "1", "pattern": "reqrep", "transport": "tcp",
                 "size": 16, "codec": "raw", "pinned": pinned, "round_trips": 100, "p50_us": p50,
                 "p99_us": 2 * p50}
            if mean is not None:
                r["mean_us"] = mean
            return r
        rows = [rt(rep, "raw", 10.0, 11.0 + rep) for rep in range(3)]
        rows += [rt(rep, "liberzmq", 12.0, 20.0 + rep) for rep in range(3)]
        rows += [rt(rep, "czmq", 13.0) for rep in range(3)]  # older results: no mean
        out = self.report_of(rows)
        self.assertIn("| tcp | yes | 10.0 / 20 / 12.0 | 12.0 / 24 / 21.0 | - | 13.0 / 26 / - |", out)
        self.assertIn("- reqrep tcp pinned: raw p50 / liberzmq p50: 0.83 (goal >= 0.91)", out)

    def test_proxy_rows_pair_by_repetition_and_older_results_say_none(self):
        # Paired ratios 1.0, 0.5, 2.0: median 1.00, where the medians' ratio would be 0.83.
        rows = []
        for rep, (lz, raw) in enumerate(((100, 100), (60, 120), (300, 150))):
            rows += [line(rep, "proxy-liberzmq", lz, pattern="pubsub", size=4096),
                     line(rep, "proxy-raw", raw, pattern="pubsub", size=4096)]
        rows.append(line(0, "proxy-liberzmq", 50, pattern="pubsub", transport="inproc"))  # its pair failed
        out = self.report_of(rows)
        self.assertIn("| tcp | 4096 | 100 | 120 | 1.00 |", out)
        self.assertIn("| inproc | 16 | 50 | - | - |", out)
        self.assertLess(out.index("| tcp | 4096 |"), out.index("| inproc | 16 |"))
        # Proxy rows are not judged; results from before bench_proxy still render.
        self.assertEqual(targets_of(out), targets_of(self.report_of([line(0, "raw", 100)])))
        self.assertIn("No proxy rows were measured in this run.", self.report_of([line(0, "raw", 100)]))


if __name__ == "__main__":
    unittest.main()
