"""Driving jobs: JobService (submit, cancel), JobPoller (to an end), and the Notifier they report to."""
