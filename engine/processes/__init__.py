"""Processes: BPMN definitions on SpiffWorkflow, persisted instances, work items."""
