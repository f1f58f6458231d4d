"""Mentoring mail for the safeguarding phrase list: ordinary talk, and the risky kinds.

BENIGN is what mentors and mentees write every week, including the idioms
that sit near a risky phrase ("it hit me that", "this essay is killing me",
"a photo of your project", "delete the draft"). RISKY has, for every family
of the shipped list, messages written the way people write them (spacing,
case, look-alike characters), so a family that stops matching fails a test.
"""

from __future__ import annotations

BENIGN = [
    "How did the maths mock go? I remember finding quadratics hard at first.",
    "It hit me last night that you should apply for the summer school. Deadline is Friday!",
    "This personal statement is killing me, I've rewritten it four times.",
    "Loved the photo of your science project in the newsletter, the volcano looked great.",
    "Delete the first draft and start again from your strongest example.",
    "Tell your parents about the open day on the 14th, they're welcome to come too.",
    "Don't forget to tell your teacher you need the reference by Monday.",
    "My secret to revision: short sessions, then a walk. Works every time.",
    "I'm dying to hear how the interview went!",
    "Beats me why they moved the exam, but at least you get an extra week.",
    "Your message really touched me, thank you for sharing how proud you are.",
    "We could meet at the careers fair with the rest of the group if you like.",
    "I'd pick the biology option, you clearly love it.",
    "Where do you see yourself in five years? No wrong answers.",
    "The gift of a good teacher is rare; sounds like you have one.",
    "Money management is a skill worth learning early. Have you tried a budget app?",
    "I lost my phone last week so sorry for the slow reply.",
    "Cut the last paragraph of your essay, it repeats the intro.",
    "That film was a killer, the ending surprised me.",
    "Good luck with the exams! Take care of yourself and sleep well.",
    "We read Romeo and Juliet at school too, the ending is sad.",
    "I hurt my knee playing football, so no running for me this week.",
    "The coding club meets on Thursdays; you could bring a friend.",
    "Keep a list of questions for the admissions team, they like curious students.",
    "Your brother sounds hilarious. Say hi from me!",
    "My own mentor once told me to just keep going, and it stuck.",
    "Remember to back up your coursework; losing it would be awful.",
    "I would not worry about the grade, the feedback matters more.",
    "Sorry, I was alone in the office all day and forgot to write back.",
    "Can you send me the reading list when you get a chance?",
    "Try drawing a picture of the cell structure, it helps you remember.",
    "Practice questions are on the exam board's site; do one a day.",
    "What are you working on this week?",
    "You handled the presentation so well, the class must have been impressed.",
    "My parents never went to university either, so I understand how it feels.",
    "Which universities are you thinking about for the open days?",
    "Put the money you earn from the Saturday job towards the trip, it sounds great.",
    "Are you presenting alone or with a partner?",
    "The secret ingredient in my lasagne is nutmeg, try it.",
    "Our next chat could be about how to prepare for interviews.",
]

RISKY = {
    "disclosure of harm": [
        "I don't want to go home tonight, my stepdad hits me when he's drunk. He hit me again.",
        "I'm scared to go home after school.",
        "Mum's boyfriend beat me up last weekend.",
    ],
    "self-harm": [
        "Sometimes I think about killing myself.",
        "i've been cutting myself again",
        "I just want to die, nothing is getting better.",
        "Everyone would be better off without me.",
    ],
    "secrecy": [
        "This is our little secret, ok?",
        "Don't tell your parents we talk about this.",
        "DON'T   TELL   ANYONE about what I said.",
        "Keep this between us please.",
    ],
    "deleting messages": [
        "Delete this message after you read it.",
        "please d3lete this email",
    ],
    "requests for photos": [
        "Send me a photo of yourself before we chat again.",
        "can u send me a pic? just for me",
        "What are you wearing right now?",
    ],
    "gifts and money": [
        "I'd love to buy you a phone so we can talk more.",
        "I can send you some money for the trip, no need to mention it.",
        "I'll buy you something nice for your birthday.",
    ],
    "meeting alone": [
        "We should meet alone sometime, without the programme.",
        "I can pick you up after school on Friday.",
        "Come to my house at the weekend, just the two of us.",
        "Where do you live? I'm often nearby.",
    ],
}
