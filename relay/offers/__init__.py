"""Match offers by email: the mentee chooses, the mentor accepts (the MentorNet loop).

- making.py    `relay match offer`: offers and their letters, in one commit
- places.py    a mentor's places, and the lock two rounds at once take
- answers.py   reading a reply: a number (or several), or yes/no
- flow.py      what a choice, a yes, a no or a deadline does; exactly once
- inbound.py   the intake branch for ``offer-<id>-<sig>@`` addresses
- reminders.py one reminder half way to each deadline, exactly once
- letters.py   the mail: offer, invitation, unclear, moved on, no choice left
- listing.py   `relay offers`: where every offer stands
"""
