"""Analysis: SE capture, attributions, interventions, class statistics, sanity checks, SE-vs-baseline comparison."""
