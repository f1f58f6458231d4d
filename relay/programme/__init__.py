"""The programme: cohorts that run a curriculum, check-ins, nudges and the focus list.

cohorts (cohorts and which pairs run in them), curriculum (the folder of
items and templates, checked), mail (building programme mail), scheduler
(the tick: due items queued exactly once), checkins (questions and parsing
answers), nudges (silences), focus (what a coordinator should look at),
ending (ending, completing and renewing a pair), listing (`relay schedule`).
"""
