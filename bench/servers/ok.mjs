// The app every contender serves: the smallest response, so that the figures
// measure the supervisor's data path and reloads, not the app. handover
// loads it as its `app:` module; the other contenders' servers import it.
export default function ok(req, res) {
  res.end('ok');
}
