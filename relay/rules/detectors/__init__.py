"""Pure text detectors behind the moderation rules.

Each detector takes a ``str`` and returns ``Found`` offsets into it; it knows
nothing about messages or configuration, so the rules can wrap it and tests
can call it directly. Patterns are compiled once, at import or in
``PhraseMatcher``; none of them can backtrack more than a bounded amount.

- text.py      ``Found``, folding that sees through case, accents, spacing and
               look-alike characters, ``PhraseMatcher``, scanning helpers
- kinds.py     the kinds of contact detail and their reasons ([rules.contact] detect)
- contacts.py  phone numbers, e-mail and postal addresses, messenger names and
               handles, offers to move off the relay
- digits.py    where a text's digits are, and searching patterns only there
- latin1.py    a text as one byte per character, for the C loops of bytes
- links.py     links in text and in HTML attributes, allowed domains
"""
