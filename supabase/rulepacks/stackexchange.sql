-- Rule pack: Stack Exchange reputation, as XP.
--
-- Loaded by `xpbase replay stackexchange` (not by `xpbase migrate`): data only,
-- beside the Discord defaults of seed.sql in the same tables. Every activity
-- is prefixed `se_` and lives in the cyber layer; the upvote cap has its own
-- cap group. Rules as Stack Exchange documents them (help center "What is
-- reputation?"; the data README in shared/data/stackexchange):
--
--   question upvoted          question owner     +5 before 2019-11-13, +10 from then on   capped
--   answer upvoted            answer owner       +10                                      capped
--   question/answer downvoted post owner         -2, never below 1                        capped (counts against the cap)
--   answer accepted           answer owner       +15 (not for accepting one's own answer) exempt
--   answer accepted           question owner     +2  (not for accepting one's own answer) exempt
--   bounty started            starter            -amount, never below 1                   exempt
--   bounty awarded            answer owner       +amount                                  exempt
--   every account             user               starts at 1
--
-- The cap: 200 reputation per user and UTC day from the capped activities
-- together, net of the downvotes received that day (the engine counts net XP
-- per cap group and day). Run as service_role; `on conflict do nothing`, so a
-- community's own edits to these rows survive a second load.

insert into public.cap_groups (slug, daily_cap, time_zone, description) values
  ('se_reputation', 200, 'UTC',
   'Stack Exchange: reputation from upvotes, net of downvotes received, at most 200 per UTC day.')
on conflict (slug) do nothing;

insert into public.activity_types
  (slug, name, description, layer_slug, base_xp, min_xp, max_xp, cooldown_seconds, cap_group, active, xp_floor) values
  ('se_account_created', 'SE: account created',
   'Stack Exchange: every account starts with 1 reputation.', 'cyber', 1, null, null, 0, null, true, 0),
  ('se_question_upvoted', 'SE: question upvoted',
   'Stack Exchange: an upvote on your question (+5; +10 from 2019-11-13, see activity_rates).',
   'cyber', 5, null, null, 0, 'se_reputation', true, 0),
  ('se_answer_upvoted', 'SE: answer upvoted',
   'Stack Exchange: an upvote on your answer.', 'cyber', 10, null, null, 0, 'se_reputation', true, 0),
  ('se_post_downvoted', 'SE: post downvoted',
   'Stack Exchange: a downvote on your question or answer; never below 1.',
   'cyber', -2, null, null, 0, 'se_reputation', true, 1),
  ('se_answer_accepted', 'SE: answer accepted',
   'Stack Exchange: your answer was accepted (not for accepting your own).', 'cyber', 15, null, null, 0, null, true, 0),
  ('se_accepted_answer', 'SE: accepted an answer',
   'Stack Exchange: you accepted an answer to your question (not your own).', 'cyber', 2, null, null, 0, null, true, 0),
  ('se_bounty_started', 'SE: bounty started',
   'Stack Exchange: the bounty you offered (its amount, negative); never below 1.',
   'cyber', -50, -1000, -1, 0, null, true, 1),
  ('se_bounty_awarded', 'SE: bounty awarded',
   'Stack Exchange: a bounty awarded to your answer (its amount; half when awarded automatically).',
   'cyber', 50, 1, 1000, 0, null, true, 0)
on conflict (slug) do nothing;

insert into public.activity_rates (activity_slug, effective_from, base_xp, description) values
  ('se_question_upvoted', '2019-11-13T00:00:00Z', 10, 'Stack Exchange doubled question upvotes on 2019-11-13.')
on conflict (activity_slug, effective_from) do nothing;

-- Badges (supabase/sql/33_badges.sql) that the dump lets us reconstruct: Stack Exchange's score badges,
-- once per post. Every vote award names its
-- post as its subject ('question:<PostId>', 'answer:<PostId>'), so a post's score is the running sum of +1 per
-- upvote and -1 per downvote over its awards (a capped upvote still counts: it granted 0 XP but raised the
-- score). A badge is kept once earned, as on Stack Exchange. `xpbase replay stackexchange` compares the counts
-- with Badges.xml. Left out: badges that need what the dump does not hold (views, edits, comments, votes
-- cast, visits, profile fields), a rule these kinds cannot say (Enlightened, Self-Learner, bounty badges),
-- and Student, Teacher and Scholar: expressible (a first question or answer reaching score 1, a first
-- accepted answer) but the dump drops the deleted posts that earned many of them (on beer the engine finds
-- 292 of 302 Students, 423 of 458 Teachers, 174 of 181 Scholars), beyond the 2% this pack is held to.
insert into public.badges
  (slug, name, description, level, series, kind, threshold, activities, weights, subject_prefix, once_per,
   position) values
  ('se_nice_question', 'Nice Question', 'Stack Exchange: question score of 10 or more.', 'bronze',
   'se_question_score', 'subject_sum', 10, '{se_question_upvoted,se_post_downvoted}',
   '{"se_question_upvoted": 1, "se_post_downvoted": -1}', 'question:', 'subject', 100),
  ('se_good_question', 'Good Question', 'Stack Exchange: question score of 25 or more.', 'silver',
   'se_question_score', 'subject_sum', 25, '{se_question_upvoted,se_post_downvoted}',
   '{"se_question_upvoted": 1, "se_post_downvoted": -1}', 'question:', 'subject', 101),
  ('se_great_question', 'Great Question', 'Stack Exchange: question score of 100 or more.', 'gold',
   'se_question_score', 'subject_sum', 100, '{se_question_upvoted,se_post_downvoted}',
   '{"se_question_upvoted": 1, "se_post_downvoted": -1}', 'question:', 'subject', 102),
  ('se_nice_answer', 'Nice Answer', 'Stack Exchange: answer score of 10 or more.', 'bronze',
   'se_answer_score', 'subject_sum', 10, '{se_answer_upvoted,se_post_downvoted}',
   '{"se_answer_upvoted": 1, "se_post_downvoted": -1}', 'answer:', 'subject', 110),
  ('se_good_answer', 'Good Answer', 'Stack Exchange: answer score of 25 or more.', 'silver',
   'se_answer_score', 'subject_sum', 25, '{se_answer_upvoted,se_post_downvoted}',
   '{"se_answer_upvoted": 1, "se_post_downvoted": -1}', 'answer:', 'subject', 111),
  ('se_great_answer', 'Great Answer', 'Stack Exchange: answer score of 100 or more.', 'gold',
   'se_answer_score', 'subject_sum', 100, '{se_answer_upvoted,se_post_downvoted}',
   '{"se_answer_upvoted": 1, "se_post_downvoted": -1}', 'answer:', 'subject', 112)
on conflict (slug) do nothing;
