// The page the sign-in popup lands on: GET [base]/auth?cluster=NAME, where
// /oidc-callback sends the browser (303) after it set the token cookie.
//
// Same contract as Headlamp's frontend (frontend/src/components/oidcauth/
// index.tsx): write localStorage.auth_status = "success". The opener sees
// the `storage` event (HTML Living Standard, "The storage event"), closes
// this popup and loads who the user now is.
'use strict';

(function signalSignIn() {
  const cluster = new URLSearchParams(window.location.search).get('cluster');
  const title = document.getElementById('auth-title');
  const message = document.getElementById('auth-message');

  if (!cluster) {
    title.textContent = 'Nothing to sign in to';
    message.textContent = 'This page ends a sign-in, but it was opened without a cluster.';
    return;
  }
  try {
    window.localStorage.setItem('auth_status', 'success');
  } catch (err) {
    title.textContent = 'Signed in, but this browser blocks local storage';
    message.textContent = `Signed in to ${cluster}. Go back to the cluster list and reload it. (${err.message})`;
    return;
  }
  title.textContent = 'Signed in';
  if (window.opener) {
    message.textContent = `Signed in to ${cluster}. This window closes by itself.`;
    // The opener normally closes this popup; close it here too in case the
    // opener was reloaded and no longer listens.
    window.setTimeout(() => window.close(), 2000);
  } else {
    message.textContent = `Signed in to ${cluster}. You can close this window, or go back to the cluster list.`;
  }
})();
