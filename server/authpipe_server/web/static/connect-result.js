// Ends a connect flow. With an opener (the app's popup): post the outcome to the connect
// session's exact origin, never "*", then close. Without one: go on to the session's return_url.
(function () {
  var element = document.getElementById("authpipe-result");
  if (!element) return;
  var data = JSON.parse(element.textContent);
  if (window.opener && data.origin) {
    try {
      window.opener.postMessage(data.message, data.origin);
    } catch (e) {
      /* the opener navigated elsewhere: nothing to tell */
    }
    window.close();
    return;
  }
  if (data.returnUrl) window.location.replace(data.returnUrl);
})();
