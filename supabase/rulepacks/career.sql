-- Rule pack: a careers community (the career gamification system, Propel2Excel), as XP.
--
-- Loaded by `xpbase load rulepack career` (not by `xpbase migrate`): data only. Seven categorised
-- activity types members claim themselves and a reviewer approves (`/claim`, `/claims`); the seed's
-- bot commands name the first four (`!event`, `!resource <description>`, `!linkedin`, resume review),
-- the other three are what a careers community rewards next: mock interviews, informational
-- interviews (networking) and job applications. All live in the reality layer (real-world career
-- steps). Run as service_role; `on conflict do nothing`, so a community's own edits survive a reload.
--
--   activity                   category              XP   review  limit per member
--   career_event_attendance    events                15   yes     7 a week
--   resource_submission        resources             10   yes     5 a week
--   linkedin_update            professional_presence  5   yes     1 a week
--   resume_review_claim        career_development    20   yes     1 in 30 days
--   mock_interview             career_development    25   yes     2 a week
--   informational_interview    networking            15   yes     3 a week
--   job_application            job_search             2   no      10 a day

insert into public.activity_categories (slug, name, description, position) values
  ('events', 'Events', 'Attending workshops, talks and community events.', 1),
  ('resources', 'Resources', 'Sharing useful articles, guides and tools with the community.', 2),
  ('professional_presence', 'Professional presence', 'Keeping your public professional profile current.', 3),
  ('career_development', 'Career development', 'Resume reviews and interview practice.', 4),
  ('networking', 'Networking', 'Conversations with people in the field you want to join.', 5),
  ('job_search', 'Job search', 'Applications sent.', 6)
on conflict (slug) do nothing;

insert into public.activity_types
  (slug, name, description, layer_slug, base_xp, min_xp, max_xp, cooldown_seconds, cap_group, active,
   category, claimable, requires_review, claim_limit, claim_window_seconds) values
  ('career_event_attendance', 'Event attendance', 'You attended a career event (`!event`): name it in the note.',
   'reality', 15, null, null, 0, null, true, 'events', true, true, 7, 604800),
  ('resource_submission', 'Resource submission', 'A resource you share (`!resource <description>`): link it.',
   'reality', 10, null, null, 0, null, true, 'resources', true, true, 5, 604800),
  ('linkedin_update', 'LinkedIn update', 'You updated your LinkedIn profile (`!linkedin`): link it.',
   'reality', 5, null, null, 0, null, true, 'professional_presence', true, true, 1, 604800),
  ('resume_review_claim', 'Resume review', 'Your resume was reviewed by a mentor or career adviser outside xpbase.',
   'reality', 20, null, null, 0, null, true, 'career_development', true, true, 1, 2592000),
  ('mock_interview', 'Mock interview', 'A practice interview with a peer or mentor.',
   'reality', 25, null, null, 0, null, true, 'career_development', true, true, 2, 604800),
  ('informational_interview', 'Informational interview', 'A conversation with someone working in your target role.',
   'reality', 15, null, null, 0, null, true, 'networking', true, true, 3, 604800),
  ('job_application', 'Job application', 'A job application you sent (no review; at most 10 a day).',
   'reality', 2, null, null, 0, null, true, 'job_search', true, false, 10, 86400)
on conflict (slug) do nothing;

-- The events feature awards event_attendance on check-in: it belongs to the same category.
update public.activity_types set category = 'events' where slug = 'event_attendance' and category is null;
