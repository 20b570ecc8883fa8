"""Training tools for the reader (`python -m qa.training`): corpora, LLM questions, pairs, training, measurement.

A tool package like `qa.evaluation`: built on the library's public names, never imported by the library.
"""
