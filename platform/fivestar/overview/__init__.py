"""The committee's views across the district: the dashboard, the advanced-organisation report
(先进机关党组织) and the member follow-up overview."""
