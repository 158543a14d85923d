"""Standing: every branch's and member's level with its full history, and the committee's adjustments
(增星摘星, 动态管理) — the one way a decided level changes after a round is finalised."""
