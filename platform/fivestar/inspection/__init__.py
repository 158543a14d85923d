"""Pages for the inspectors (督查组): the district's audit trail, spot checks (随机抽查) with recorded
seeds, and a report of anomalies (异常情况). Everything here reads; only a draw is written."""
