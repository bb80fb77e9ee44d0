"""Enrolment: who is known to the terminals, as signed, versioned sets (docs/enrolment.md)."""
