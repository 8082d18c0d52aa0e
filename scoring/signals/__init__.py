"""Signals that compare what two answers assert (numbers, dates, negations, modality, names,
tool calls, JSON fields, code, language, dropped warnings), each finding an `Evidence` item
with the values and their offsets in both answers."""
