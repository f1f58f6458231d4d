"""Match offers by email: the mentee chooses, the mentor accepts (the MentorNet loop).

- making.py    `relay match offer`: offers and their letters, in one commit
- answers.py   reading a reply: a number (or several), or yes/no
- flow.py      what a choice, a yes, a no or a deadline does; exactly once
- inbound.py   the intake branch for ``offer-<id>-<sig>@`` addresses
- letters.py   the mail: offer, invitation, unclear, moved on, no choice left
- listing.py   `relay offers`: where every offer stands
"""
