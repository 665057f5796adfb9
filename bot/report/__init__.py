"""What the coach reports about a runner's own data: the Sunday summary (`weekly`) and the
one-page summary for a clinician (`pdf`), both from one gathered `ReportData` (`data`)."""
